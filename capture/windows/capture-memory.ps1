# Cordon memory capture for Windows: runs on the suspect instance as SYSTEM through Cordon's SSM
# document (resources/memory-capture.yml), which sets the CORDON_* variables from its validated
# parameters and appends this file. It follows capture/linux/capture-memory.sh step for step; read
# that file's header and docs/evidence.md.
#
# Differences from Linux, and why:
#  - WinPmem must exist as a file to run, and it loads a driver it writes to a temporary file, so the
#    tool (a few MB) is written under %TEMP% on the system volume. The image itself is never written to
#    disk: WinPmem writes it to standard output ("-"), and this script reads that stream a part at a
#    time into memory, hashes it and uploads it.
#  - WinPmem writes a raw image (no LiME headers); there is no compression.
#
# Inputs (environment): CORDON_CASE_ID, CORDON_TOOL_URL_B64, CORDON_TOOL_SHA256,
# CORDON_SESSION_URL_B64, CORDON_PART_SIZE_MIB. This file is inlined into a CloudFormation template
# by the Serverless Framework: never write a dollar sign followed by an opening brace, nor two
# opening braces in a row.

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3
[Net.ServicePointManager]::SecurityProtocol = [Net.SecurityProtocolType]::Tls12

function Write-Log([string]$Message) {
  $stamp = (Get-Date).ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ')
  [Console]::Error.WriteLine("$stamp cordon-capture: $Message")
}

function Stop-Capture([string]$Message) {
  Write-Log "error: $Message"
  exit 1
}

# Every pattern ends with \z, not with a dollar sign: in .NET, a final dollar sign also matches before a
# trailing newline, so a hash followed by a line break would pass.
$Hex64 = '^[0-9a-f]{64}\z'
$Base64Pattern = '^[A-Za-z0-9+/]{16,8188}={0,2}\z'
$HttpsUrl = '^https://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?/[A-Za-z0-9._~/%-]{1,1024}[?][A-Za-z0-9._~%=&-]{1,8192}\z'
$HttpsOrigin = '^https://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?\z'

function ConvertFrom-LinkParameter([string]$Encoded) {
  if ($Encoded -cnotmatch $Base64Pattern) { Stop-Capture 'a link parameter is not base64' }
  $url = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($Encoded))
  if ($url -cnotmatch $HttpsUrl) { Stop-Capture 'a link parameter is not an allowed URL' }
  return $url
}

function ConvertTo-Hex([byte[]]$Bytes) {
  return ([BitConverter]::ToString($Bytes) -replace '-', '').ToLowerInvariant()
}

function Get-Sha256([byte[]]$Bytes, [int]$Count) {
  $sha = [Security.Cryptography.SHA256]::Create()
  try { return ,$sha.ComputeHash($Bytes, 0, $Count) } finally { $sha.Dispose() }
}

function Get-Sha256Hex([byte[]]$Bytes, [int]$Count) { return ConvertTo-Hex (Get-Sha256 $Bytes $Count) }

function Get-HmacSha256([byte[]]$Key, [string]$Data) {
  $hmac = New-Object Security.Cryptography.HMACSHA256
  $hmac.Key = $Key
  try { return $hmac.ComputeHash([Text.Encoding]::UTF8.GetBytes($Data)) } finally { $hmac.Dispose() }
}

$script:ClockOffset = [TimeSpan]::Zero
function Get-S3Time { return [DateTime]::UtcNow.Add($script:ClockOffset) }

# AWS Signature Version 4 for one S3 request; $Headers is an ordered map of lower-case names to values,
# sorted by name, including host and every x-amz-* header sent.
function Get-Authorization([string]$Method, [string]$Path, [string]$Query, [string]$AmzDate, [string]$Payload, $Headers) {
  $canonicalHeaders = ''
  foreach ($name in $Headers.Keys) { $canonicalHeaders += "$name" + ':' + $Headers[$name] + "`n" }
  $signedHeaders = ($Headers.Keys | ForEach-Object { $_ }) -join ';'
  $request = "$Method`n$Path`n$Query`n$canonicalHeaders`n$signedHeaders`n$Payload"
  $requestHash = Get-Sha256Hex ([Text.Encoding]::UTF8.GetBytes($request)) ([Text.Encoding]::UTF8.GetByteCount($request))
  $day = $AmzDate.Substring(0, 8)
  $scope = "$day/$($script:Session.region)/s3/aws4_request"
  $toSign = "AWS4-HMAC-SHA256`n$AmzDate`n$scope`n$requestHash"
  $key = [Text.Encoding]::UTF8.GetBytes('AWS4' + $script:Session.secret_access_key)
  foreach ($part in @($day, $script:Session.region, 's3', 'aws4_request')) { $key = Get-HmacSha256 $key $part }
  $signature = ConvertTo-Hex (Get-HmacSha256 $key $toSign)
  return "AWS4-HMAC-SHA256 Credential=$($script:Session.access_key_id)/$scope, SignedHeaders=$signedHeaders, Signature=$signature"
}

# PUTs $Count bytes of $Body with their SHA-256 checksum, signed; returns the ETag S3 answered.
function Send-S3Put([string]$Path, [string]$Query, [byte[]]$Body, [int]$Count, [string]$IfNoneMatch) {
  $digest = Get-Sha256 $Body $Count
  $payload = ConvertTo-Hex $digest
  $checksum = [Convert]::ToBase64String($digest)
  $origin = [Uri]$script:Session.endpoint
  $uri = $script:Session.endpoint + $Path
  if ($Query) { $uri = $uri + '?' + $Query }
  for ($attempt = 1; $attempt -le 4; $attempt++) {
    $amzDate = (Get-S3Time).ToString('yyyyMMddTHHmmssZ')
    $headers = [ordered]@{ 'host' = $origin.Authority }
    if ($IfNoneMatch) { $headers['if-none-match'] = $IfNoneMatch }
    $headers['x-amz-checksum-sha256'] = $checksum
    $headers['x-amz-content-sha256'] = $payload
    $headers['x-amz-date'] = $amzDate
    $headers['x-amz-security-token'] = $script:Session.session_token
    $authorization = Get-Authorization 'PUT' $Path $Query $amzDate $payload $headers
    try {
      $request = [Net.HttpWebRequest]::Create($uri)
      $request.Method = 'PUT'
      $request.ContentLength = $Count
      $request.Timeout = 900000
      $request.ReadWriteTimeout = 900000
      $request.ServicePoint.Expect100Continue = $false
      foreach ($name in $headers.Keys) { if ($name -ne 'host') { $request.Headers.Add($name, $headers[$name]) } }
      $request.Headers.Add('Authorization', $authorization)
      $stream = $request.GetRequestStream()
      $stream.Write($Body, 0, $Count)
      $stream.Close()
      $response = $request.GetResponse()
      $etag = $response.Headers['ETag']
      $response.Close()
      return $etag
    } catch {
      Write-Log "PUT $Path failed (attempt $attempt): $($_.Exception.Message)"
      Start-Sleep -Seconds ($attempt * 3)
    }
  }
  Stop-Capture "S3 refused $Path"
}

function Read-Full($Stream, [byte[]]$Buffer) {
  $filled = 0
  while ($filled -lt $Buffer.Length) {
    $read = $Stream.Read($Buffer, $filled, $Buffer.Length - $filled)
    if ($read -le 0) { break }
    $filled += $read
  }
  return $filled
}

function Read-Session([string]$Text) {
  $patterns = [ordered]@{
    version = '^1\z'
    case_id = '^[0-9]{8}T[0-9]{6}Z-i-[0-9a-f]{8,17}-[0-9a-f]{4}\z'
    region = '^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]\z'
    endpoint = $HttpsOrigin
    image_path = '^/[A-Za-z0-9._~/%-]{1,1024}\z'
    report_path = '^/[A-Za-z0-9._~/%-]{1,1024}\z'
    upload_id = '^[A-Za-z0-9._~+/=-]{1,1024}\z'
    part_size_mib = '^[1-9][0-9]{0,3}\z'
    max_parts = '^[1-9][0-9]{0,4}\z'
    access_key_id = '^[A-Z0-9]{16,128}\z'
    secret_access_key = '^[A-Za-z0-9+/=]{16,128}\z'
    session_token = '^[A-Za-z0-9+/=]{16,4096}\z'
    expires_at = '^[0-9T:.Z-]{20,30}\z'
  }
  $session = @{}
  foreach ($line in ($Text -split "`n")) {
    $line = $line.TrimEnd("`r")
    if (-not $line) { continue }
    $at = $line.IndexOf('=')
    if ($at -lt 1) { Stop-Capture 'malformed upload session' }
    $name = $line.Substring(0, $at)
    $value = $line.Substring($at + 1)
    if (-not $patterns.Contains($name)) { Stop-Capture 'unknown session field' }
    if ($value -cnotmatch $patterns[$name]) { Stop-Capture "bad session field $name" }
    $session[$name] = $value
  }
  foreach ($name in $patterns.Keys) { if (-not $session.ContainsKey($name)) { Stop-Capture "the session lacks $name" } }
  if ($session.case_id -cne $env:CORDON_CASE_ID) { Stop-Capture 'the session is for another case' }
  if ($session.part_size_mib -cne $env:CORDON_PART_SIZE_MIB) { Stop-Capture 'the session plans another part size' }
  if ([int]$session.max_parts -gt 10000) { Stop-Capture 'bad part count' }
  $session.upload_query_id = $session.upload_id.Replace('+', '%2B').Replace('/', '%2F').Replace('=', '%3D')
  return $session
}

$work = $null
try {
  if ("$env:CORDON_CASE_ID" -cnotmatch '^[0-9]{8}T[0-9]{6}Z-i-[0-9a-f]{8,17}-[0-9a-f]{4}\z') { Stop-Capture 'bad case id' }
  if ("$env:CORDON_TOOL_SHA256" -cnotmatch $Hex64) { Stop-Capture 'bad tool hash' }
  if ("$env:CORDON_PART_SIZE_MIB" -cnotmatch '^[1-9][0-9]{0,3}\z') { Stop-Capture 'bad part size' }
  $partMiB = [int]$env:CORDON_PART_SIZE_MIB
  if ($partMiB -lt 5 -or $partMiB -gt 2047) { Stop-Capture 'part size out of range' }
  $toolUrl = ConvertFrom-LinkParameter "$env:CORDON_TOOL_URL_B64"
  $sessionUrl = ConvertFrom-LinkParameter "$env:CORDON_SESSION_URL_B64"

  $work = Join-Path ([IO.Path]::GetTempPath()) ("cordon-" + $env:CORDON_CASE_ID)
  New-Item -ItemType Directory -Path $work -Force | Out-Null
  $tool = Join-Path $work 'winpmem.exe'
  Write-Log "case $($env:CORDON_CASE_ID): fetching the acquisition tool"
  (New-Object Net.WebClient).DownloadFile($toolUrl, $tool)
  if ((Get-FileHash -Algorithm SHA256 -Path $tool).Hash.ToLowerInvariant() -cne $env:CORDON_TOOL_SHA256) {
    Stop-Capture "the tool's SHA-256 is not the pinned one; it was not run"
  }

  $client = New-Object Net.WebClient
  $sessionText = $client.DownloadString($sessionUrl)
  $serverDate = $client.ResponseHeaders['Date']
  if ($serverDate) { $script:ClockOffset = [DateTime]::Parse($serverDate).ToUniversalTime() - [DateTime]::UtcNow }
  $script:Session = Read-Session $sessionText
  $maxParts = [int]$script:Session.max_parts

  $started = (Get-S3Time).ToString('yyyy-MM-ddTHH:mm:ssZ')
  Write-Log "acquiring memory (raw) in parts of $partMiB MiB"
  $info = New-Object Diagnostics.ProcessStartInfo
  $info.FileName = $tool
  $info.Arguments = '-'
  $info.UseShellExecute = $false
  $info.RedirectStandardOutput = $true
  $info.RedirectStandardError = $true
  $info.CreateNoWindow = $true
  $process = [Diagnostics.Process]::Start($info)
  $toolLog = $process.StandardError.ReadToEndAsync()
  $stream = $process.StandardOutput.BaseStream

  $buffer = New-Object byte[] ($partMiB * 1048576)
  $whole = [Security.Cryptography.SHA256]::Create()
  $parts = New-Object Collections.ArrayList
  $total = [long]0
  $number = 0
  while ($true) {
    $filled = Read-Full $stream $buffer
    if ($filled -eq 0) { break }
    $number++
    if ($number -gt $maxParts) { $process.Kill(); Stop-Capture "the image is larger than the $maxParts parts planned for it" }
    [void]$whole.TransformBlock($buffer, 0, $filled, $null, 0)
    $digest = Get-Sha256 $buffer $filled
    $query = "partNumber=$number&uploadId=$($script:Session.upload_query_id)"
    $etag = Send-S3Put $script:Session.image_path $query $buffer $filled ''
    if ("$etag" -cnotmatch '^"?[A-Za-z0-9+/=_-]{1,128}"?\z') { Stop-Capture "S3 returned no usable ETag for part $number" }
    [void]$parts.Add([ordered]@{
        partNumber = $number
        bytes = $filled
        sha256 = ConvertTo-Hex $digest
        checksumSha256 = [Convert]::ToBase64String($digest)
        etag = "$etag".Trim('"')
      })
    $total += $filled
    if ($number % 50 -eq 0) { Write-Log "uploaded $number parts ($total bytes)" }
    if ($filled -lt $buffer.Length) { break }
  }
  $process.WaitForExit()
  if ($process.ExitCode -ne 0) {
    $said = ($toolLog.Result -replace '[^\x20-\x7e]', ' ')
    if ($said.Length -gt 300) { $said = $said.Substring($said.Length - 300) }
    Stop-Capture "the acquisition tool failed: $said"
  }
  if ($number -eq 0) { Stop-Capture 'the acquisition tool produced no data' }
  [void]$whole.TransformFinalBlock((New-Object byte[] 0), 0, 0)
  $imageSha = ConvertTo-Hex $whole.Hash

  $kernel = ([Environment]::OSVersion.Version.ToString() -replace '[^A-Za-z0-9._+~-]', '')
  $report = [ordered]@{
    schema = 'cordon.memory-report/1'
    caseId = $env:CORDON_CASE_ID
    tool = [ordered]@{ name = 'winpmem'; sha256 = $env:CORDON_TOOL_SHA256 }
    image = [ordered]@{ bytes = $total; sha256 = $imageSha; format = 'raw' }
    partSize = $buffer.Length
    parts = @($parts)
    host = [ordered]@{ kernel = $kernel; machine = "$env:PROCESSOR_ARCHITECTURE" -replace '[^A-Za-z0-9_-]', ''; clockSkewSeconds = [int]$script:ClockOffset.TotalSeconds }
    startedAt = $started
    finishedAt = (Get-S3Time).ToString('yyyy-MM-ddTHH:mm:ssZ')
  }
  $reportBytes = [Text.Encoding]::UTF8.GetBytes(($report | ConvertTo-Json -Depth 6 -Compress))
  [void](Send-S3Put $script:Session.report_path '' $reportBytes $reportBytes.Length '*')
  Write-Log "done: $number parts, $total bytes, SHA-256 $imageSha"
} finally {
  # The tool, and WinPmem's driver file, are removed; the credentials were only ever in memory.
  if ($work -and (Test-Path $work)) { Remove-Item -Recurse -Force $work -ErrorAction SilentlyContinue }
}
